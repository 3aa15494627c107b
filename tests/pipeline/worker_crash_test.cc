// Workers that really die (SIGKILL, at failpoints and at random moments) on both backends:
// their claims expire and are taken over, and in the end every file is in exactly one
// completed manifest and every row in exactly one output, with no extra output.
#include <signal.h>

#include <random>
#include <thread>

#include "warden/events.h"
#include "worker_test_fixture.h"

namespace warden::pipeline {
namespace {

using testing::Child;

class WorkerCrash : public WorkerTest {
 protected:
  std::vector<std::string> worker_argv(const std::vector<std::string>& extra) const {
    std::vector<std::string> argv = {testing::warden_binary()};
    for (const std::string& a : cli(extra)) argv.push_back(a);
    return argv;
  }
};
WARDEN_PIPELINE_BACKENDS(WorkerCrash);

// The dangerous moments of one attempt: claimed (nothing written), the durable temp output
// before the rename, the published output before the completed mark.
TEST_P(WorkerCrash, ClaimOfAWorkerKilledAtEachFailpointIsTakenOverAndCompletedOnce) {
  std::vector<std::string> keys = land_and_ingest({10, 10, 10});
  const std::vector<std::string> failpoints = {"pipeline.work.after_claim",
                                               "pipeline.work.after_output_write",
                                               "pipeline.work.after_rename"};
  std::set<std::string> dead_writers;
  for (const std::string& failpoint : failpoints) {
    // The lease outlasts the next child's start (seconds under a sanitizer), so each child
    // claims a fresh manifest rather than taking over its predecessor's.
    Child child = Child::spawn(worker_argv({"work", "--once", "--claim-lease", "15s"}),
                               {{"WARDEN_FAILPOINTS", failpoint + "=crash"}});
    testing::ChildResult died = child.wait();
    ASSERT_FALSE(died.exited) << failpoint << ": " << died.err;
    EXPECT_EQ(died.signal, SIGKILL) << failpoint;
  }
  // Each crash left its manifest processing under a claim of a writer that is gone.
  auto rows = db()->query("SELECT id, status, claim_writer FROM pipeline_manifests ORDER BY id");
  ASSERT_EQ(rows.size(), 3u);
  for (const sql::Row& r : rows) {
    EXPECT_EQ(r[1].value_or(""), "processing") << *r[0];
    dead_writers.insert(r[2].value_or(""));
  }
  EXPECT_EQ(dead_writers.size(), 3u);
  // after_output_write left a hidden temp file, after_rename a published but unrecorded output.
  std::vector<std::string> left = parquet_dir_files();
  EXPECT_EQ(left.size(), 2u);

  Pipeline pipeline(options());
  PipelineWorker worker(pipeline, worker_options());
  start_event_capture();
  size_t completed = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (const WorkResult& r : worker.work_until_idle()) {
          EXPECT_EQ(r.status, "completed") << r.error;
          EXPECT_EQ(r.attempts, 2) << r.id;
          ++completed;
        }
        return completed == 3;
      },
      std::chrono::seconds(90)));
  std::vector<nlohmann::json> events = stop_event_capture();
  std::set<std::string> taken_from;
  for (const nlohmann::json& e : events) {
    if (e["event"] == "pipeline.claim.expired") taken_from.insert(e["previous_writer"]);
  }
  EXPECT_EQ(taken_from, dead_writers);
  expect_every_row_exactly_once(keys);
}

// Issue 7: "Workers SIGKILLed mid-conversion at random, 4 workers against PostgreSQL: in the
// end every file is in exactly one completed manifest and every row in exactly one output."
TEST_P(WorkerCrash, FourWorkersKilledAtRandomLoseAndDuplicateNothing) {
  std::vector<std::string> keys;
  for (int day = 1; day <= 3; ++day) {
    for (int i = 0; i < 40; ++i) keys.push_back(land("2024-01-0" + std::to_string(day), i, 300));
  }
  ingest();
  const int64_t manifests = count("SELECT COUNT(*) FROM pipeline_manifests");
  ASSERT_EQ(manifests, 12);

  const std::vector<std::string> argv =
      worker_argv({"work", "--loop", "--poll", "50ms", "--claim-lease", "1s", "--max-attempts",
                   "1000", "--threads", "1"});
  // Each claim is held at least 300 ms before converting, so the killer below always finds
  // claim holders to kill however fast or slow the machine converts.
  const std::map<std::string, std::string> env = {
      {"WARDEN_FAILPOINTS", "pipeline.work.after_claim=sleep:300"}};
  std::vector<Child> workers;
  std::vector<SteadyClock::time_point> started;
  for (int i = 0; i < 4; ++i) {
    workers.push_back(Child::spawn(argv, env));
    started.push_back(SteadyClock::now());
  }

  std::mt19937 random(std::random_device{}());
  int kills = 0, kills_of_claim_holders = 0;
  auto done = [&] {
    return count("SELECT COUNT(*) FROM pipeline_manifests WHERE status = 'completed'") == manifests;
  };
  const auto deadline = SteadyClock::now() + std::chrono::seconds(240);
  while (!done() && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 300));
    if (kills >= 16) continue;  // then let them finish
    // Prefer a worker that holds a claim right now: its conversion dies half-way. Wait a
    // little for one to appear (every claim is held at least 300 ms).
    size_t victim = random() % workers.size();
    sql::Rows holders;
    for (int poll = 0; poll < 100 && holders.empty() && !done(); ++poll) {
      holders = db()->query(
          "SELECT claim_writer FROM pipeline_manifests WHERE status = 'processing' ORDER BY id");
      if (holders.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!holders.empty()) {
      const std::string writer = holders[random() % holders.size()][0].value_or("");
      for (size_t w = 0; w < workers.size(); ++w) {
        if (writer.find(":" + std::to_string(workers[w].pid()) + ":") != std::string::npos) {
          victim = w;
          ++kills_of_claim_holders;
        }
      }
    }
    workers[victim].kill(SIGKILL);
    workers[victim].wait();
    workers[victim] = Child::spawn(argv, env);
    started[victim] = SteadyClock::now();
    ++kills;
  }
  ASSERT_TRUE(done()) << "not finished after " << kills << " kills";
  for (size_t w = 0; w < workers.size(); ++w) {
    // A SIGTERM before the program installed its handler would just kill it (the default
    // action); give a restarted worker time to get there.
    std::this_thread::sleep_until(started[w] + std::chrono::seconds(3));
    workers[w].kill(SIGTERM);
    testing::ChildResult stopped = workers[w].wait();
    EXPECT_TRUE(stopped.exited && stopped.exit_code == 0)
        << "exited " << stopped.exited << " code " << stopped.exit_code << " signal "
        << stopped.signal << ": " << stopped.err.substr(0, 2000);
  }
  EXPECT_GT(kills_of_claim_holders, 0);
  // Killed claim holders made some manifests need more than one claim.
  EXPECT_GT(count("SELECT SUM(attempts) FROM pipeline_manifests"), manifests);
  expect_every_row_exactly_once(keys);
}

}  // namespace
}  // namespace warden::pipeline
