"""SiamFC on a frozen backbone (Tables 1-2): the network, its training on GOT-10k pairs, a tracker
with the got10k toolkit's interface, and the OTB-2015 experiment with the toolkit's metrics."""
