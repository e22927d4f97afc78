"""Step 9 of the loop, from measuring to improving: gate a release on a verdict, and tune an engine against the judge."""
