"""Image folders: building the default set, crawling, cleaning, de-duplicating, manifests, loading."""
