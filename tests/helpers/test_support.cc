#include "helpers/test_support.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "warden/posix.h"

namespace warden::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/warden-test-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

Child Child::fork_function(std::function<int()> fn) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int code = 1;
    try {
      code = fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  Child child;
  child.pid_ = pid;
  return child;
}

Child Child::spawn(const std::vector<std::string>& argv,
                   const std::map<std::string, std::string>& env, bool capture,
                   const std::string& stdin_text) {
  Child child;
  if (capture) {
    child.out_path_ = temp_name_beside("/tmp/warden-child-out");
    child.err_path_ = temp_name_beside("/tmp/warden-child-err");
  }
  std::string stdin_path;
  if (!stdin_text.empty()) {
    stdin_path = temp_name_beside("/tmp/warden-child-in");
    spit(stdin_path, stdin_text);
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    for (const auto& [key, value] : env) ::setenv(key.c_str(), value.c_str(), 1);
    if (capture) {
      int out = ::open(child.out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(child.err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(err, STDERR_FILENO);
    }
    int in =
        stdin_path.empty() ? ::open("/dev/null", O_RDONLY) : ::open(stdin_path.c_str(), O_RDONLY);
    ::dup2(in, STDIN_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (!stdin_path.empty()) {
    // The child opened it right after fork or will shortly; unlink after it has started.
    std::thread([stdin_path] {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      ::unlink(stdin_path.c_str());
    }).detach();
  }
  child.pid_ = pid;
  return child;
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_),
      result_(std::move(other.result_)),
      out_path_(std::move(other.out_path_)),
      err_path_(std::move(other.err_path_)) {
  other.pid_ = -1;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    this->~Child();
    new (this) Child(std::move(other));
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !result_) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  if (!out_path_.empty()) ::unlink(out_path_.c_str());
  if (!err_path_.empty()) ::unlink(err_path_.c_str());
}

namespace {

ChildResult decode(int status) {
  ChildResult result;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace

bool Child::finished() {
  if (result_) return true;
  int status;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    result_ = decode(status);
    return true;
  }
  return false;
}

ChildResult Child::wait(std::chrono::milliseconds timeout) {
  if (!result_) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!finished()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "child " << pid_ << " did not finish in time; killing it";
        ::kill(pid_, SIGKILL);
        int status;
        ::waitpid(pid_, &status, 0);
        result_ = decode(status);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ChildResult result = *result_;
  if (!out_path_.empty()) result.out = slurp(out_path_);
  if (!err_path_.empty()) result.err = slurp(err_path_);
  return result;
}

void Child::kill(int signal) {
  if (pid_ > 0 && !result_) ::kill(pid_, signal);
}

std::string warden_binary() { return WARDEN_CLI_PATH; }

ChildResult run_warden(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env,
                       std::chrono::milliseconds timeout, const std::string& stdin_text) {
  std::vector<std::string> argv{warden_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Child child = Child::spawn(argv, env, true, stdin_text);
  return child.wait(timeout);
}

bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return predicate();
}

std::string postgres_conninfo() {
  const char* conninfo = std::getenv("WARDEN_TEST_PG");
  if (!conninfo || !*conninfo) {
    ADD_FAILURE() << "WARDEN_TEST_PG is not set: run the suite through scripts/test, which "
                     "starts a throw-away PostgreSQL (PostgreSQL tests fail rather than skip)";
    return "";
  }
  return conninfo;
}

namespace {

void exec_or_fail(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    ADD_FAILURE() << "connect " << conninfo << ": " << PQerrorMessage(conn);
    PQfinish(conn);
    return;
  }
  PGresult* result = PQexec(conn, sql.c_str());
  ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    ADD_FAILURE() << "exec '" << sql.substr(0, 200) << "': " << PQerrorMessage(conn);
  }
  PQclear(result);
  PQfinish(conn);
}

}  // namespace

PostgresDatabase::PostgresDatabase() {
  admin_conninfo_ = postgres_conninfo();
  if (admin_conninfo_.empty()) return;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random_u64()));
  name_ = std::string("warden_test_") + suffix;
  exec_or_fail(admin_conninfo_, "CREATE DATABASE " + name_);
  conninfo_ = admin_conninfo_ + " dbname=" + name_;
}

PostgresDatabase::~PostgresDatabase() {
  if (name_.empty()) return;
  exec_or_fail(admin_conninfo_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

void PostgresDatabase::exec(const std::string& sql) const {
  if (conninfo_.empty()) {
    ADD_FAILURE() << "no PostgreSQL server for this test";
    return;
  }
  exec_or_fail(conninfo_, sql);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void spit(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

std::map<std::string, std::vector<std::string>> runbook_blocks_by_scenario(const std::string& path,
                                                                           std::string* error) {
  std::map<std::string, std::vector<std::string>> blocks;
  std::istringstream in(slurp(path));
  const std::regex marker("^<!-- runbook-test: ([a-z-]+) -->$");
  std::string line, scenario, block;
  bool in_block = false;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    std::smatch m;
    if (in_block) {
      if (line == "```") {
        blocks[scenario].push_back(block);
        in_block = false;
        scenario.clear();
      } else {
        block += line + "\n";
      }
    } else if (std::regex_match(line, m, marker)) {
      scenario = m[1];
    } else if (line == "```sh") {
      if (scenario.empty()) {
        *error += path + ":" + std::to_string(line_number) + ": sh block without a marker\n";
      }
      in_block = true;
      block.clear();
    } else if (!line.empty()) {
      scenario.clear();  // a marker belongs to the block right after it
    }
  }
  return blocks;
}

}  // namespace warden::testing
