// Seed 001 cases 15-19 (the WRDS client) against the real PostgreSQL that scripts/test
// starts. Nothing here is mocked but the clock of the rate limiter.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "helpers/test_support.h"
#include "pg_test_support.h"
#include "warden/events.h"
#include "warden/posix.h"
#include "warden/postgres.h"

namespace warden {
namespace {

using testing::PasswordRole;
using testing::PostgresDatabase;
using testing::ScopedEnv;
using testing::TempDir;

pg::Settings settings_for(const PostgresDatabase& db) {
  pg::Settings settings;
  settings.conninfo = db.conninfo();
  settings.query_timeout = std::chrono::seconds(30);
  settings.retry_base_delay = std::chrono::milliseconds(20);
  return settings;
}

// A fake clock: sleep_for advances time instead of waiting.
class FakeClock : public pg::Clock {
 public:
  std::chrono::steady_clock::time_point now() override { return now_; }
  void sleep_for(std::chrono::nanoseconds d) override {
    now_ += d;
    slept_ += d;
  }
  std::chrono::nanoseconds slept() const { return slept_; }

 private:
  std::chrono::steady_clock::time_point now_{};
  std::chrono::nanoseconds slept_{0};
};

TEST(WrdsClientTest, Case15_ConnectionPoolCreation) {
  PostgresDatabase db;
  pg::Settings settings = settings_for(db);
  settings.pool_size = 3;
  settings.max_overflow = 2;
  settings.server_connection_limit = 7;
  pg::Pool pool(settings);
  EXPECT_EQ(pool.max_connections(), 5);
  EXPECT_EQ(pool.open_connections(), 0) << "the pool connects lazily";

  int first_backend = 0;
  {
    auto lease = pool.lease();
    first_backend = lease->backend_pid();
  }
  {
    auto lease = pool.lease();
    EXPECT_EQ(lease->backend_pid(), first_backend) << "an idle connection must be reused";
  }
  EXPECT_EQ(pool.connections_opened(), 1);

  // Five at once is the most; a sixth waits until one comes back.
  std::vector<pg::Pool::Lease> leases;
  for (int i = 0; i < 5; ++i) leases.push_back(pool.lease());
  EXPECT_EQ(pool.open_connections(), 5);
  std::atomic<bool> sixth_got_one{false};
  std::thread sixth([&] {
    auto lease = pool.lease();
    sixth_got_one = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(sixth_got_one.load()) << "the pool must not exceed pool_size + max_overflow";
  leases.pop_back();
  sixth.join();
  EXPECT_TRUE(sixth_got_one.load());
  leases.clear();
  EXPECT_EQ(pool.idle_connections(), 3) << "overflow connections close when returned";
}

TEST(WrdsClientTest, Case15_PoolNeverExceedsServerLimit) {
  pg::Settings settings;
  settings.pool_size = 10;
  settings.max_overflow = 5;
  settings.server_connection_limit = 7;
  pg::Pool pool(settings);
  EXPECT_EQ(pool.max_connections(), 7);
}

TEST(WrdsClientTest, Case16_RateLimitRespectsQpm) {
  FakeClock clock;
  pg::RateLimiter limiter(60, clock);  // one a second, burst of 10
  for (int i = 0; i < 10; ++i) limiter.acquire();
  EXPECT_EQ(clock.slept().count(), 0) << "the burst is free";
  for (int i = 0; i < 30; ++i) limiter.acquire();
  // 30 more at 60 per minute take 30 seconds of (fake) time, no less.
  double slept = std::chrono::duration<double>(clock.slept()).count();
  EXPECT_GE(slept, 29.99);
  EXPECT_LE(slept, 30.5);
}

TEST(WrdsClientTest, Case16_RateLimitAppliesAcrossThreads) {
  FakeClock clock;
  pg::RateLimiter limiter(600, clock);  // ten a second, burst of 100
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) limiter.acquire();
    });
  }
  for (auto& t : threads) t.join();
  // 200 acquisitions, 100 free: the other 100 need at least 10 s of clock time.
  EXPECT_GE(std::chrono::duration<double>(clock.now().time_since_epoch()).count(), 9.99);
}

TEST(WrdsClientTest, Case17_QueryTimeoutCancellation) {
  PostgresDatabase db;
  pg::Settings settings = settings_for(db);
  settings.query_timeout = std::chrono::milliseconds(300);
  pg::Connection connection(settings);
  auto started = std::chrono::steady_clock::now();
  try {
    connection.execute("SELECT pg_sleep(30)");
    FAIL() << "expected a timeout";
  } catch (const pg::PostgresError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout) << e.what();
    EXPECT_EQ(e.sqlstate(), "57014");
    EXPECT_NE(std::string(e.what()).find("query_timeout"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20))
      << "the query must have been cancelled, not waited out";
  // The connection is usable afterwards, and nothing of ours still runs on the server.
  auto rows = connection.query_text("SELECT 1");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].value_or(""), "1");
  pg::Connection observer(settings_for(db));
  auto running = observer.query_text("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                                     std::to_string(connection.backend_pid()) +
                                     " AND query LIKE '%pg_sleep(30)%' AND state = "
                                     "'active'");
  EXPECT_EQ(running[0][0].value_or(""), "0");
}

TEST(WrdsClientTest, Case17_CopyTimeoutCancelsOnServer) {
  PostgresDatabase db;
  pg::Settings settings = settings_for(db);
  settings.copy_timeout = std::chrono::milliseconds(300);
  pg::Connection connection(settings);
  size_t bytes = 0;
  EXPECT_THROW(
      connection.copy_out_binary("SELECT g, pg_sleep(0.01) FROM generate_series(1, 100000) g",
                                 [&](std::string_view chunk) { bytes += chunk.size(); }),
      pg::PostgresError);
  auto rows = connection.query_text("SELECT 2");
  EXPECT_EQ(rows[0][0].value_or(""), "2");
}

TEST(WrdsClientTest, Case18_RetryOnTransientErrors) {
  PostgresDatabase db;
  pg::Settings settings = settings_for(db);
  pg::Pool pool(settings);
  pg::Connection killer(settings_for(db));
  int attempts = 0;
  start_event_capture();
  pg::with_retries(settings, [&](int attempt) {
    attempts = attempt;
    auto lease = pool.lease();
    if (attempt == 1) {
      // The server drops this session mid-flight, as an admin or a restart would.
      killer.execute("SELECT pg_terminate_backend(" + std::to_string(lease->backend_pid()) + ")");
    }
    auto rows = lease->query_text("SELECT 42");
    EXPECT_EQ(rows[0][0].value_or(""), "42");
  });
  auto events = stop_event_capture();
  EXPECT_EQ(attempts, 2);
  int retries = 0;
  for (const auto& e : events) retries += e["event"] == "source.retry";
  EXPECT_EQ(retries, 1);
  EXPECT_EQ(pool.connections_opened(), 2) << "the dropped connection is replaced, cleanly";
}

TEST(WrdsClientTest, Case18_NonTransientErrorsAreNotRetried) {
  PostgresDatabase db;
  pg::Settings settings = settings_for(db);
  pg::Connection connection(settings);
  int attempts = 0;
  try {
    pg::with_retries(settings, [&](int attempt) {
      attempts = attempt;
      connection.execute("SELECT * FROM no_such_table");
    });
    FAIL() << "expected an error";
  } catch (const pg::PostgresError& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
  EXPECT_EQ(attempts, 1);
}

TEST(WrdsClientTest, Case18_TransientSqlstates) {
  for (const char* state : {"08006", "08001", "57P01", "53300", "40001", "40P01"}) {
    EXPECT_TRUE(pg::is_transient_sqlstate(state)) << state;
  }
  for (const char* state : {"57014", "42P01", "28P01", "", "22003"}) {
    EXPECT_FALSE(pg::is_transient_sqlstate(state)) << state;
  }
}

TEST(WrdsClientTest, Case19_CredentialsFromPgpass) {
  PostgresDatabase db;
  PasswordRole role(db);
  TempDir dir;
  std::string pgpass = dir / "pgpass";
  testing::spit(pgpass, "*:*:*:" + role.name() + ":s3cret-Pa55\n");
  ::chmod(pgpass.c_str(), 0600);
  ScopedEnv env("PGPASSFILE", pgpass);
  pg::Settings settings;
  settings.conninfo = role.conninfo();
  pg::Connection connection(settings);
  auto rows = connection.query_text("SELECT current_user");
  EXPECT_EQ(rows[0][0].value_or(""), role.name());
}

TEST(WrdsClientTest, Case19_PgpassReadableByOthersIsExplained) {
  PostgresDatabase db;
  PasswordRole role(db);
  TempDir dir;
  std::string pgpass = dir / "pgpass";
  testing::spit(pgpass, "*:*:*:" + role.name() + ":s3cret-Pa55\n");
  ::chmod(pgpass.c_str(), 0644);
  ScopedEnv env("PGPASSFILE", pgpass);
  pg::Settings settings;
  settings.conninfo = role.conninfo();
  try {
    pg::Connection connection(settings);
    FAIL() << "libpq ignores a group/world-readable pgpass, so this must fail";
  } catch (const pg::PostgresError& e) {
    EXPECT_NE(std::string(e.what()).find("chmod 0600 " + pgpass), std::string::npos) << e.what();
  }
}

TEST(WrdsClientTest, Case19_CredentialsFromSecretCommand) {
  PostgresDatabase db;
  PasswordRole role(db);
  ScopedEnv env("PGPASSFILE", "/nonexistent");
  pg::Settings settings;
  settings.conninfo = role.conninfo();
  settings.password_command = "printf 's3cret-Pa55\\n'";
  pg::Connection connection(settings);
  EXPECT_EQ(connection.query_text("SELECT current_user")[0][0].value_or(""), role.name());
}

TEST(WrdsClientTest, Case19_WrongPasswordNeverAppearsInTheError) {
  PostgresDatabase db;
  PasswordRole role(db);
  ScopedEnv env("PGPASSFILE", "/nonexistent");
  pg::Settings settings;
  settings.conninfo = role.conninfo() + " password=Wr0ngSecretValue";
  try {
    pg::Connection connection(settings);
    FAIL() << "expected authentication to fail";
  } catch (const pg::PostgresError& e) {
    std::string message = e.what();
    EXPECT_EQ(message.find("Wr0ngSecretValue"), std::string::npos) << message;
    EXPECT_NE(message.find("password authentication failed"), std::string::npos) << message;
    EXPECT_NE(message.find("password=***"), std::string::npos) << message;
  }
}

TEST(WrdsClientTest, Case19_FailingSecretCommandHidesItsOutput) {
  pg::Settings settings;
  settings.conninfo = "host=/nonexistent dbname=x";
  settings.password_command = "echo leaked-secret; exit 3";
  try {
    pg::Connection connection(settings);
    FAIL() << "expected the password command to fail";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("leaked-secret"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("password_command"), std::string::npos) << e.what();
  }
}

TEST(WrdsClientTest, UnreachableServerSaysSo) {
  pg::Settings settings;
  settings.conninfo = "host=/nonexistent-socket-dir port=1 dbname=x user=x";
  try {
    pg::Connection connection(settings);
    FAIL() << "expected a connection error";
  } catch (const pg::PostgresError& e) {
    EXPECT_NE(std::string(e.what()).find("unreachable"), std::string::npos) << e.what();
  }
}

TEST(WrdsClientTest, RedactsEveryPasswordForm) {
  EXPECT_EQ(pg::redact_conninfo("host=h password=abc user=u"), "host=h password=*** user=u");
  EXPECT_EQ(pg::redact_conninfo("host=h password='a b c' user=u"), "host=h password=*** user=u");
  EXPECT_EQ(pg::redact_conninfo("postgresql://user:abc@host:5432/db"),
            "postgresql://user:***@host:5432/db");
  EXPECT_EQ(pg::redact_conninfo("postgresql://host/db?sslmode=require&password=abc"),
            "postgresql://host/db?sslmode=require&password=***");
}

TEST(WrdsClientTest, WrdsPresetUsesWrdsUsername) {
  ScopedEnv user("WRDS_USERNAME", "jdoe");
  pg::Settings settings = pg::settings_from_source("wrds");
  EXPECT_NE(settings.conninfo.find("host='wrds-pgdata.wharton.upenn.edu'"), std::string::npos);
  EXPECT_NE(settings.conninfo.find("port=9737"), std::string::npos);
  EXPECT_NE(settings.conninfo.find("dbname='wrds'"), std::string::npos);
  EXPECT_NE(settings.conninfo.find("sslmode=require"), std::string::npos);
  EXPECT_NE(settings.conninfo.find("user='jdoe'"), std::string::npos);
  EXPECT_THROW(pg::settings_from_source("mysql://x"), InvalidArgumentError);
}

}  // namespace
}  // namespace warden
