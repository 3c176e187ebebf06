"""Converters from other case formats into EdgeTutor pack source folders (see agentclinic/)."""
