import sys

from autoglm.bench import main

sys.exit(main())
