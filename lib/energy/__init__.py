"""The energy-efficiency domain (UCI ENB2012): table, split, model, train, evaluate, serve."""
