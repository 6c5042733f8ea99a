"""Offline checks of the Kubernetes deployment: chart, images, kind files (no cluster needed)."""
