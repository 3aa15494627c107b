// docs/runbooks/wrds-credentials.md, run: every ```sh block in order, in a fresh HOME, with
// the wrds preset pointed at the test server. A block starting "# exit: N" must exit N.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "helpers/test_support.h"
#include "pg_test_support.h"

namespace warden {
namespace {

using testing::PasswordRole;
using testing::PostgresDatabase;
using testing::TempDir;

struct Block {
  std::string text;
  int expected_exit = 0;
};

std::vector<Block> sh_blocks(const std::string& markdown) {
  std::vector<Block> blocks;
  static const std::regex kFence("```sh\n([\\s\\S]*?)```");
  for (auto it = std::sregex_iterator(markdown.begin(), markdown.end(), kFence);
       it != std::sregex_iterator(); ++it) {
    Block block{(*it)[1].str()};
    std::smatch exit;
    static const std::regex kExit("^# exit: (\\d+)\n");
    if (std::regex_search(block.text, exit, kExit)) block.expected_exit = std::stoi(exit[1]);
    blocks.push_back(block);
  }
  return blocks;
}

// Host, port and dbname of a key=value conninfo.
std::string conninfo_value(const std::string& conninfo, const std::string& key) {
  std::smatch match;
  std::regex pattern(key + "=(\\S+)");
  return std::regex_search(conninfo, match, pattern) ? match[1].str() : "";
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

TEST(WrdsCredentialsRunbook, EveryCommandWorksAsWritten) {
  std::string doc =
      testing::slurp(std::string(WARDEN_SOURCE_DIR) + "/docs/runbooks/wrds-credentials.md");
  auto blocks = sh_blocks(doc);
  ASSERT_GE(blocks.size(), 7u) << "the runbook's sh blocks were not found";

  PostgresDatabase db;
  db.exec(
      "CREATE SCHEMA crsp; CREATE SCHEMA comp; CREATE SCHEMA ff;"
      "CREATE TABLE crsp.dsf (permno int, permco int, date date, prc numeric(12,4), "
      "ret numeric(10,6), retx numeric(10,6), vol numeric, shrout numeric, cfacpr numeric, "
      "cfacshr numeric);"
      "CREATE TABLE comp.funda (gvkey text, datadate date, fyear int, indfmt text, "
      "datafmt text, popsrc text, consol text, curcd text, fyr int, at numeric, lt numeric, "
      "sale numeric, ni numeric, ceq numeric, csho numeric);"
      "CREATE TABLE ff.factors_daily (date date, mktrf numeric, smb numeric, hml numeric, "
      "rf numeric, umd numeric);");
  PasswordRole role(db);
  db.exec("GRANT USAGE ON SCHEMA crsp, comp, ff TO " + role.name() +
          "; GRANT SELECT ON ALL TABLES IN SCHEMA crsp, comp, ff TO " + role.name());
  const std::string host = conninfo_value(db.conninfo(), "host");
  const std::string port = conninfo_value(db.conninfo(), "port");
  TempDir home;
  std::string path = std::filesystem::path(testing::warden_binary()).parent_path().string() + ":" +
                     std::getenv("PATH");
  std::map<std::string, std::string> env = {
      {"HOME", home.path()},
      {"PATH", path},
      {"WRDS_USERNAME", role.name()},
      {"WRDS_PASSWORD", "s3cret-Pa55"},
      {"NEW_WRDS_PASSWORD", "n3w-Secret-77"},
      {"WARDEN_WRDS_HOST", host},
      {"WARDEN_WRDS_PORT", port},
      {"WARDEN_WRDS_DBNAME", db.name()},
  };
  // Nothing from the test's own environment may supply a password or a service.
  const std::string prologue =
      "set -e\nunset PGPASSFILE PGSERVICEFILE PGPASSWORD PGUSER WARDEN_PASSWORD_COMMAND "
      "WARDEN_CREDENTIAL_EXPIRES\n";
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::string script = blocks[i].text;
    // The real WRDS address becomes the test server's, in the files the blocks write.
    script = replace_all(script, "wrds-pgdata.wharton.upenn.edu:9737:wrds:",
                         host + ":" + port + ":" + db.name() + ":");
    script = replace_all(script, "host=wrds-pgdata.wharton.upenn.edu", "host=" + host);
    script = replace_all(script, "port=9737", "port=" + port);
    script = replace_all(script, "dbname=wrds", "dbname=" + db.name());
    // The rotation block runs after the password changed on the server.
    if (script.find("NEW_WRDS_PASSWORD") != std::string::npos) {
      db.exec("ALTER ROLE " + role.name() + " PASSWORD 'n3w-Secret-77'");
    }
    auto result = testing::Child::spawn({"/bin/bash", "-c", prologue + script}, env, true)
                      .wait(std::chrono::seconds(60));
    ASSERT_TRUE(result.exited) << "block " << i;
    EXPECT_EQ(result.exit_code, blocks[i].expected_exit) << "block " << i << ":\n"
                                                         << blocks[i].text << "\nstdout:\n"
                                                         << result.out << "\nstderr:\n"
                                                         << result.err;
    if (blocks[i].expected_exit == 0) {
      EXPECT_NE(result.out.find("connected:  yes"), std::string::npos) << result.out;
    }
  }
}

}  // namespace
}  // namespace warden
