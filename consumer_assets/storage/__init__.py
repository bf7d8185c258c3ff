"""Storage: URIs to pyarrow filesystems, and the atomic, manifest-committed partition store."""
