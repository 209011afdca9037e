"""What every channel shares before a message reaches the assistant."""
