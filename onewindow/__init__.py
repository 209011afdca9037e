"""OneWindow: the service backend and shared code behind every channel."""
