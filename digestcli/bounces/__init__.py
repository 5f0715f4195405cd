"""Mail that comes back after a send: reading the bounce mailbox, classifying it, acting on it."""
