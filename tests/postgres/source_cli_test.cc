// `warden source check|describe` through the real binary against the real server, and the
// settings that come from the environment.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "helpers/test_support.h"
#include "pg_test_support.h"
#include "warden/events.h"
#include "warden/postgres.h"
#include "warden/postgres_source.h"

namespace warden {
namespace {

using testing::PasswordRole;
using testing::PostgresDatabase;
using testing::run_warden;
using testing::ScopedEnv;
using testing::TempDir;

// A database with WRDS's three dataset tables (empty is enough to be readable).
void create_dataset_tables(const PostgresDatabase& db) {
  db.exec(R"sql(
    CREATE SCHEMA crsp; CREATE SCHEMA comp; CREATE SCHEMA ff;
    CREATE TABLE crsp.dsf_data (permno int, permco int, date date, prc numeric(12,4),
      ret numeric(10,6), retx numeric(10,6), vol numeric(14,0), shrout numeric(12,0),
      cfacpr numeric(12,6), cfacshr numeric(12,6));
    CREATE VIEW crsp.dsf AS SELECT * FROM crsp.dsf_data;
    CREATE TABLE comp.funda (gvkey text, datadate date, fyear int, indfmt text, datafmt text,
      popsrc text, consol text, curcd text, fyr int, at numeric(18,3), lt numeric(18,3),
      sale numeric(18,3), ni numeric(18,3), ceq numeric(18,3), csho numeric(18,3));
    CREATE TABLE ff.factors_daily (date date NOT NULL, mktrf numeric(8,4), smb numeric(8,4),
      hml numeric(8,4), rf numeric(8,4), umd numeric(8,4));
    COMMENT ON TABLE ff.factors_daily IS 'Fama-French daily factors';
    INSERT INTO ff.factors_daily SELECT d, 0.1, 0.2, 0.3, 0.01, NULL
      FROM generate_series(date '2020-01-01', date '2020-12-31', interval '1 day') d;
    ANALYZE ff.factors_daily;)sql");
}

TEST(SourceCheckCli, ReportsVersionLatencyAndEveryReadableDataset) {
  PostgresDatabase db;
  create_dataset_tables(db);
  auto result =
      run_warden({"source", "check", "--source", "postgresql:" + db.conninfo(), "--json"});
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  auto report = nlohmann::json::parse(result.out);
  EXPECT_TRUE(report["connected"].get<bool>());
  EXPECT_FALSE(report["server_version"].get<std::string>().empty());
  EXPECT_GE(report["latency_ms"].get<double>(), 0.0);
  for (const char* dataset : {"crsp", "compustat", "fama_french"}) {
    EXPECT_TRUE(report["datasets"][dataset]["readable"].get<bool>()) << dataset;
  }
}

TEST(SourceCheckCli, DatasetWithoutPermissionIsNamedWithTheReason) {
  PostgresDatabase db;
  create_dataset_tables(db);
  PasswordRole role(db);
  db.exec("GRANT USAGE ON SCHEMA crsp, comp, ff TO " + role.name() + "; GRANT SELECT ON " +
          "crsp.dsf, crsp.dsf_data, ff.factors_daily TO " + role.name());
  auto result = run_warden({"source", "check", "--source", "postgresql:" + role.conninfo()},
                           {{"PGPASSWORD", "s3cret-Pa55"}});
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 3) << result.out << result.err;
  EXPECT_NE(result.out.find("compustat    NOT readable: permission denied"), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("crsp         readable"), std::string::npos) << result.out;
}

TEST(SourceCheckCli, WrongPasswordIsExitOneAndNeverShowsTheSecret) {
  PostgresDatabase db;
  PasswordRole role(db);
  TempDir home;
  auto result = run_warden({"source", "check", "--source",
                            "postgresql:" + role.conninfo() + " password=Wr0ngSecretValue"},
                           {{"HOME", home.path()}, {"PGPASSFILE", home / "none"}});
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ((result.out + result.err).find("Wr0ngSecretValue"), std::string::npos);
  EXPECT_NE(result.out.find("password authentication failed"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("~/.pgpass"), std::string::npos) << "the fix is named: " << result.out;
}

TEST(SourceCheckCli, UnreachablePortIsExitOneWithTheFix) {
  auto result = run_warden({"source", "check", "--source", "postgresql://nobody@127.0.0.1:1/wrds"});
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.out.find("connected:  no"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("the server is unreachable"), std::string::npos) << result.out;
}

TEST(SourceCheckCli, PgpassReadableByOthersIsReportedWithChmod) {
  PostgresDatabase db;
  create_dataset_tables(db);
  PasswordRole role(db);
  TempDir home;
  std::string pgpass = home / ".pgpass";
  testing::spit(pgpass, "*:*:*:" + role.name() + ":s3cret-Pa55\n");
  ::chmod(pgpass.c_str(), 0644);
  auto result = run_warden({"source", "check", "--source", "postgresql:" + role.conninfo()},
                           {{"HOME", home.path()}});
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 1) << "libpq ignores the file, so there is no password";
  EXPECT_NE(result.out.find("chmod 0600 " + pgpass), std::string::npos) << result.out;
  // After the fix the same command connects.
  ::chmod(pgpass.c_str(), 0600);
  db.exec("GRANT USAGE ON SCHEMA crsp, comp, ff TO " + role.name() +
          "; GRANT SELECT ON ALL TABLES IN SCHEMA crsp, comp, ff TO " + role.name());
  auto fixed = run_warden({"source", "check", "--source", "postgresql:" + role.conninfo()},
                          {{"HOME", home.path()}});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
}

TEST(SourceCheckCli, ExpiringCredentialRaisesTheEventAndExitsThree) {
  PostgresDatabase db;
  create_dataset_tables(db);
  std::string soon =
      format_utc(std::chrono::system_clock::now() + std::chrono::hours(24 * 10)).substr(0, 10);
  auto result =
      run_warden({"--log-json", "source", "check", "--source", "postgresql:" + db.conninfo()},
                 {{"WARDEN_CREDENTIAL_EXPIRES", soon}});
  ASSERT_TRUE(result.exited);
  EXPECT_EQ(result.exit_code, 3) << result.out << result.err;
  EXPECT_NE(result.err.find("\"event\":\"sync.credential.expiring\""), std::string::npos)
      << result.err;
  EXPECT_NE(result.out.find("rotate it"), std::string::npos) << result.out;
}

TEST(SourceCheckCli, NoSourceGivenIsAUsageErrorNamingTheOptions) {
  auto result = run_warden({"source", "check"}, {{"WARDEN_SOURCE", ""}});
  ASSERT_TRUE(result.exited);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.err.find("WARDEN_SOURCE"), std::string::npos) << result.err;
}

TEST(SourceDescribeCli, ShowsColumnsTypesCommentAndEstimatedRows) {
  PostgresDatabase db;
  create_dataset_tables(db);
  auto result = run_warden({"source", "describe", "ff.factors_daily", "--source",
                            "postgresql:" + db.conninfo(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto info = nlohmann::json::parse(result.out);
  EXPECT_EQ(info["kind"], "table");
  EXPECT_EQ(info["comment"], "Fama-French daily factors");
  EXPECT_EQ(info["estimated_rows"], 366);
  ASSERT_EQ(info["columns"].size(), 6u);
  EXPECT_EQ(info["columns"][0]["name"], "date");
  EXPECT_EQ(info["columns"][0]["nullable"], false);
  EXPECT_EQ(info["columns"][1]["type"], "numeric(8,4)");
  auto view = run_warden(
      {"source", "describe", "crsp.dsf", "--source", "postgresql:" + db.conninfo(), "--json"});
  auto view_info = nlohmann::json::parse(view.out);
  EXPECT_EQ(view_info["kind"], "view");
  EXPECT_TRUE(view_info["estimated_rows"].is_null());
  auto missing =
      run_warden({"source", "describe", "crsp.nope", "--source", "postgresql:" + db.conninfo()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("crsp.nope: no such table or view"), std::string::npos) << missing.err;
}

TEST(PostgresSettings, EnvironmentOverridesTuningAndRejectsGarbage) {
  ScopedEnv qpm("WARDEN_PG_QPM", "20");
  ScopedEnv timeout("WARDEN_PG_QUERY_TIMEOUT", "1.5");
  ScopedEnv pool("WARDEN_PG_POOL_SIZE", "2");
  ScopedEnv command("WARDEN_PASSWORD_COMMAND", "pass show wrds");
  pg::Settings settings = pg::wrds_preset();
  pg::apply_environment(settings);
  EXPECT_EQ(settings.queries_per_minute, 20);
  EXPECT_EQ(settings.query_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(settings.pool_size, 2);
  EXPECT_EQ(settings.password_command, "pass show wrds");
  EXPECT_EQ(pg::wrds_preset().parallel_exports, 1) << "one Duo push per sync by default";
  EXPECT_EQ(pg::Settings{}.parallel_exports, 2);
  {
    ScopedEnv parallel("WARDEN_PG_PARALLEL_EXPORTS", "3");
    pg::apply_environment(settings);
    EXPECT_EQ(settings.parallel_exports, 3);
    EXPECT_EQ(PostgresSource(settings).concurrent_exports(), 3);
  }
  {
    ScopedEnv none("WARDEN_PG_PARALLEL_EXPORTS", "0");
    EXPECT_THROW(pg::apply_environment(settings), InvalidArgumentError);
  }
  ScopedEnv bad("WARDEN_PG_MAX_RETRIES", "three");
  try {
    pg::apply_environment(settings);
    FAIL() << "a value that does not parse must be refused";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("WARDEN_PG_MAX_RETRIES='three'"), std::string::npos)
        << e.what();
  }
}

TEST(PostgresSettings, CredentialExpiryCountsDaysAndWarnsUnderThirty) {
  pg::Settings settings;
  EXPECT_FALSE(pg::check_credential_expiry(settings, "2026-01-01").has_value());
  settings.credential_expires = "2026-03-01";
  start_event_capture();
  EXPECT_EQ(pg::check_credential_expiry(settings, "2026-01-01"), 59);
  EXPECT_EQ(pg::check_credential_expiry(settings, "2026-02-15"), 14);
  EXPECT_EQ(pg::check_credential_expiry(settings, "2026-03-03"), -2);
  auto events = stop_event_capture();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["event"], "sync.credential.expiring");
  EXPECT_EQ(events[0]["level"], "warning");
  EXPECT_EQ(events[1]["level"], "critical");
  settings.credential_expires = "2026-02-30";
  EXPECT_THROW(pg::check_credential_expiry(settings, "2026-01-01"), InvalidArgumentError);
}

}  // namespace
}  // namespace warden
