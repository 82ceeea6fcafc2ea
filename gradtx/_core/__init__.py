"""The bottom layer: the contract, input validation, and the tree math every transform shares."""
