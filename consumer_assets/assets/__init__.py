"""One asset (and its checks) per module."""
