"""The virtual patient: model discovery and loading, retrieval of case facts, the prompt, the guard.

Nothing is imported or loaded here: import the submodule you need (`edgetutor.patient.models`,
`edgetutor.patient.llm`, ...), so that importing the package stays free of llama.cpp.
"""
