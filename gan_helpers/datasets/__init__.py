"""Image folders: building the default set, cleaning, de-duplicating, manifests, loading."""
