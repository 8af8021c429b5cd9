"""freelunch: speech enhancement whose pruning gates tell you what is in the audio."""
