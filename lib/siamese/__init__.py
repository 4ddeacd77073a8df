"""The Fashion-MNIST siamese domain: IDX data, pairs, model, train, evaluate, serve."""
