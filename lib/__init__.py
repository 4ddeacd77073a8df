"""Plain Python and Keras building blocks of trainflow; nothing here imports Prefect."""
