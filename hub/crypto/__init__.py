"""Signatures, sealed sections and the data-key store of contract v2.

``signing`` signs and verifies what each national system and the hub publish, ``sealing`` encrypts the
sections that must not travel in the clear, ``keystore`` keeps each case's data key wrapped per entitled
country (and destroys it to crypto-shred a case), and ``policy`` says who is entitled to what.
"""
