"""verify

Importing the package applies the library patches (verify/library_patches.py, the one place where
library code is replaced), so every verification path — PDF, OFD, CMS, trust lists — runs with them.
"""

from verify import library_patches

library_patches.install()
