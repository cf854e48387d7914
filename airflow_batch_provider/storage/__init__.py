"""Local files for Blob transfers: sources, globs and MD5s, and the persistent MD5 cache."""
