#include "warden/lazy_library.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "helpers/test_support.h"
#include "warden/error.h"

namespace warden {
namespace {

TEST(LazyLibrary, ResolvesAFunctionOfEachLibrary) {
  EXPECT_NE(lazy_symbol(LazyLibrary::kDuckDb, "duckdb_library_version"), nullptr);
  EXPECT_NE(lazy_symbol(LazyLibrary::kLibpq, "PQlibVersion"), nullptr);
  EXPECT_NE(lazy_symbol(LazyLibrary::kSqlite, "sqlite3_libversion"), nullptr);
  EXPECT_NE(lazy_symbol(LazyLibrary::kCrypto, "EVP_sha256"), nullptr);
}

TEST(LazyLibrary, AMissingFunctionIsAnIoErrorThatNamesItAndTheFix) {
  try {
    lazy_symbol(LazyLibrary::kLibpq, "PQnoSuchFunction");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("libpq.so.5 has no function PQnoSuchFunction"), std::string::npos)
        << message;
    EXPECT_NE(message.find("scripts/bootstrap"), std::string::npos) << message;
  }
}

// The point of loading lazily: `guard run` (like lock and block commands) never maps libduckdb,
// libpq, libsqlite3 or libcrypto. The job prints its parent's memory map; its parent is the guard.
TEST(LazyLibrary, GuardRunLoadsNoneOfTheLazyLibraries) {
  testing::TempDir dir;
  auto result = testing::run_warden(
      {"guard", "run", "--db", dir / "x.duckdb", "--", "/bin/sh", "-c", "cat /proc/$PPID/maps"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_NE(result.out.find("/warden"), std::string::npos) << "not the guard's map:\n"
                                                           << result.out;
  EXPECT_EQ(result.out.find("libduckdb"), std::string::npos);
  EXPECT_EQ(result.out.find("libpq"), std::string::npos);
  EXPECT_EQ(result.out.find("libsqlite3"), std::string::npos);
  EXPECT_EQ(result.out.find("libcrypto"), std::string::npos);
}

// And a command that does use DuckDB loads it on demand.
TEST(LazyLibrary, SampleCreateLoadsDuckDbOnDemand) {
  testing::TempDir dir;
  auto result = testing::run_warden({"sample", "create", dir / "s.duckdb", "--scale", "0.001"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "s.duckdb"));
}

}  // namespace
}  // namespace warden
