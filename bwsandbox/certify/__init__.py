"""Vendor pre-certification (docs/certify.md): run a vendor's real export job
against a fresh sandbox and judge a published list of criteria."""
