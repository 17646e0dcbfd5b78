import sys

from tests.bank.soak import main

sys.exit(main())
