"""What both domains share: settings, files, hashing, fetching, training, the gate, the registry."""
