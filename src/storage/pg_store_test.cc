#include "storage/pg_store.h"

#include <doctest/doctest.h>
