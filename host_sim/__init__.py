"""The host-side tools: backend/, emulators/, bench/, tools/ (virtual board and device toolchain), demo."""
