"""The fault matrix: hard kills, a corrupt partition, a read-only lake, a full disk."""
