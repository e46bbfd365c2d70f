"""autoglm."""
