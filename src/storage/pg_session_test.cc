// PgSession's parts that need no PostgreSQL server (the rest:
// pg_store_test.cc).
#include <doctest/doctest.h>

#include "storage/pg_store.h"

namespace lottery {

TEST_CASE("WithoutPassword keeps every setting but the password, from either DSN form") {
  CHECK(PgSession::WithoutPassword("host=db port=5433 dbname=lottery user=ops password=s3cret") ==
        "user='ops' dbname='lottery' host='db' port='5433'");
  CHECK(PgSession::WithoutPassword(R"(dbname='a b' password='it\'s' application_name=x)") ==
        "dbname='a b' application_name='x'");
  const std::string uri = PgSession::WithoutPassword(
      "postgresql://ops:s3cret@db1:5432,db2:5432/lottery?target_session_attrs=read-write");
  CHECK(uri.find("s3cret") == std::string::npos);
  CHECK(uri.find("password") == std::string::npos);
  CHECK(uri.find("host='db1,db2'") != std::string::npos);
  CHECK(uri.find("target_session_attrs='read-write'") != std::string::npos);
  // Quotes and backslashes in a value survive, escaped as libpq reads them.
  CHECK(PgSession::WithoutPassword(R"(dbname='o\'k\\')") == R"(dbname='o\'k\\')");
  CHECK(PgSession::WithoutPassword("this is = not a dsn").empty());
}

}  // namespace lottery
