"""The legacy import's adapters: the old service's database it reads, the store it fills."""
