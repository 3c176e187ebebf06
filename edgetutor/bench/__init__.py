"""`edgetutor bench`: how fast each available model talks on this machine."""
