// The Python module `warden` (pybind11): the DataBlock's producer and consumer, and
// `warden.recovery` (the seed's pylabhub.recovery) for diagnosis and recovery from Python.
//
// Errors: every warden::Error becomes a Python exception of the same class name (warden.Error,
// warden.IoError, warden.LockAcquisitionError, warden.LockRecoveryError,
// warden.VerificationError, warden.InvalidArgumentError, ...; all derive from warden.Error),
// carrying `code` ("lock_held", "not_found", ...). Results are plain dicts and lists, the same
// shape as the CLI's --json output. Calls that wait release the GIL while they wait.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "warden/block.h"
#include "warden/error.h"

namespace py = pybind11;
namespace block = warden::block;

namespace {

std::chrono::milliseconds to_ms(double seconds) {
  if (seconds < 0) throw warden::InvalidArgumentError("timeout must be >= 0 seconds");
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
}

// nlohmann::json -> Python objects, through the json module (results are small).
py::object to_python(const nlohmann::json& value) {
  static py::object loads = py::module_::import("json").attr("loads");
  return loads(value.dump());
}

nlohmann::json hold_json(const block::ReaderHoldInfo& r) {
  return {{"consumer_id", r.consumer_id}, {"pid", r.pid}, {"alive", r.alive}};
}

nlohmann::json participant_json(const block::ParticipantInfo& p) {
  return {{"id", p.id},
          {"role", p.role},
          {"pid", p.pid},
          {"alive", p.alive},
          {"heartbeat_age_seconds", p.heartbeat_age_seconds},
          {"heartbeat_stale", p.heartbeat_stale}};
}

nlohmann::json action_json(const block::RecoveryAction& a) {
  return {{"action", a.action}, {"slot", a.slot}, {"detail", a.detail}};
}

// A held read, as Python sees it: the payload is copied out at read time (bytes), the hold is
// kept until release() or the end of a `with` block, so the slot is not overwritten meanwhile.
class PyReadSlot {
 public:
  explicit PyReadSlot(block::ReadSlot slot)
      : slot_(std::move(slot)),
        data_(reinterpret_cast<const char*>(slot_->data().data()), slot_->data().size()),
        index_(slot_->index()),
        sequence_(slot_->sequence()),
        verified_(slot_->verify()) {}
  py::bytes data() const { return py::bytes(data_); }
  uint32_t index() const { return index_; }
  uint64_t sequence() const { return sequence_; }
  // Whether the payload matched its writer's checksum when it was read.
  bool verify() const { return verified_; }
  bool still_held() const { return slot_ && slot_->still_held(); }
  void release() { slot_.reset(); }

 private:
  std::optional<block::ReadSlot> slot_;
  std::string data_;
  uint32_t index_;
  uint64_t sequence_;
  bool verified_;
};

// A slot held for writing from Python, filled in place with write() (straight into the
// slot's shared memory), then commit() or abort(). No view of the shared memory is handed
// out: one could outlive the mapping, or write into the slot after it is published.
class PyWriteSlot {
 public:
  explicit PyWriteSlot(block::WriteSlot slot) : slot_(std::move(slot)) {}
  uint32_t index() { return live().index(); }
  size_t size() { return live().buffer().size(); }
  void write(py::bytes data, size_t offset) {
    std::string_view bytes = data;
    auto target = live().buffer();
    if (offset > target.size() || bytes.size() > target.size() - offset) {
      throw warden::InvalidArgumentError("write " + std::to_string(bytes.size()) +
                                         " bytes at offset " + std::to_string(offset) +
                                         " into slot " + std::to_string(live().index()) + " of " +
                                         std::to_string(target.size()) + " bytes: it does not fit");
    }
    std::memcpy(target.data() + offset, bytes.data(), bytes.size());
  }
  uint64_t commit(size_t length) {
    uint64_t sequence = live().commit(length);
    slot_.reset();
    return sequence;
  }
  void abort() {
    if (slot_) slot_->abort();
    slot_.reset();
  }

 private:
  block::WriteSlot& live() {
    if (!slot_) {
      throw warden::InvalidArgumentError("the write slot was already committed or aborted");
    }
    return *slot_;
  }
  std::optional<block::WriteSlot> slot_;
};

void register_errors(py::module_& m) {
  static py::exception<warden::Error> error(m, "Error");
  static py::exception<warden::IoError> io_error(m, "IoError", error.ptr());
  static py::exception<warden::LockAcquisitionError> acquisition(m, "LockAcquisitionError",
                                                                 error.ptr());
  static py::exception<warden::LockRecoveryError> recovery(m, "LockRecoveryError", error.ptr());
  static py::exception<warden::MalformedLockFileError> malformed(m, "MalformedLockFileError",
                                                                 error.ptr());
  static py::exception<warden::StaleTokenError> stale(m, "StaleTokenError", error.ptr());
  static py::exception<warden::SchemaError> schema(m, "SchemaError", error.ptr());
  static py::exception<warden::VerificationError> verification(m, "VerificationError", error.ptr());
  static py::exception<warden::InvalidArgumentError> invalid(m, "InvalidArgumentError",
                                                             error.ptr());
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const warden::Error& e) {
      // The most derived class wins; `code` says what to do next, as in the C++ API.
      PyObject* type = error.ptr();
      if (dynamic_cast<const warden::IoError*>(&e)) type = io_error.ptr();
      if (dynamic_cast<const warden::LockAcquisitionError*>(&e)) type = acquisition.ptr();
      if (dynamic_cast<const warden::LockRecoveryError*>(&e)) type = recovery.ptr();
      if (dynamic_cast<const warden::MalformedLockFileError*>(&e)) type = malformed.ptr();
      if (dynamic_cast<const warden::StaleTokenError*>(&e)) type = stale.ptr();
      if (dynamic_cast<const warden::SchemaError*>(&e)) type = schema.ptr();
      if (dynamic_cast<const warden::VerificationError*>(&e)) type = verification.ptr();
      if (dynamic_cast<const warden::InvalidArgumentError*>(&e)) type = invalid.ptr();
      py::object instance = py::reinterpret_borrow<py::object>(type)(e.what());
      instance.attr("code") = warden::error_code_name(e.code());
      PyErr_SetObject(type, instance.ptr());
    }
  });
}

void define_block(py::module_& m) {
  m.def(
      "create_block",
      [](const std::string& name, uint32_t slots, uint64_t slot_size, double heartbeat_timeout) {
        block::create_block(name, {.slot_count = slots,
                                   .slot_size = slot_size,
                                   .heartbeat_timeout = to_ms(heartbeat_timeout)});
      },
      py::arg("name"), py::arg("slots"), py::arg("slot_size"), py::arg("heartbeat_timeout") = 5.0,
      "Creates DataBlock `name` (POSIX shared memory, mode 0600). Raises Error (code "
      "'lock_held') when it exists.");
  m.def("remove_block", &block::remove_block, py::arg("name"),
        "Removes the block's name; False when there was none.");

  py::class_<block::Producer>(m, "Producer", "Writes slots of a DataBlock.")
      .def_static("open", &block::Producer::open, py::arg("name"))
      .def_property_readonly("slot_count", &block::Producer::slot_count)
      .def_property_readonly("slot_size", &block::Producer::slot_size)
      .def(
          "write",
          [](block::Producer& self, py::bytes payload, double timeout,
             std::optional<uint32_t> slot) {
            std::string data = payload;
            py::gil_scoped_release unlocked;
            return self.write(std::as_bytes(std::span<const char>(data.data(), data.size())),
                              to_ms(timeout), slot);
          },
          py::arg("payload"), py::arg("timeout") = 5.0, py::arg("slot") = py::none(),
          "Acquires a slot (the given one, or the best free one), copies the payload in and "
          "commits it. Returns the sequence. Raises LockAcquisitionError on timeout.")
      .def(
          "acquire",
          [](block::Producer& self, double timeout, std::optional<uint32_t> slot) {
            std::optional<block::WriteSlot> taken;
            {
              py::gil_scoped_release unlocked;
              taken.emplace(self.acquire(to_ms(timeout), slot));
            }
            return PyWriteSlot(std::move(*taken));
          },
          py::arg("timeout") = 5.0, py::arg("slot") = py::none(),
          "Write-locks a slot (the given one, or the best free one) to fill in place with "
          "write(data, offset); then commit(length) or abort(). Use it in a `with` block: leaving "
          "it without commit aborts. Raises LockAcquisitionError on timeout.");

  py::class_<PyWriteSlot>(m, "WriteSlot", "A slot held for writing.")
      .def_property_readonly("index", &PyWriteSlot::index)
      .def_property_readonly("size", &PyWriteSlot::size, "The slot's size in bytes.")
      .def("write", &PyWriteSlot::write, py::arg("data"), py::arg("offset") = 0,
           "Copies `data` into the slot at `offset` (straight into shared memory). Raises "
           "InvalidArgumentError when it does not fit or the slot was committed or aborted.")
      .def("commit", &PyWriteSlot::commit, py::arg("length"),
           "Publishes the first `length` bytes (checksum, next sequence); returns the sequence. "
           "Raises InvalidArgumentError when length exceeds the slot size.")
      .def("abort", &PyWriteSlot::abort, "Gives the slot up unpublished (it becomes FREE).")
      .def("__enter__", [](PyWriteSlot& self) -> PyWriteSlot& { return self; })
      .def("__exit__", [](PyWriteSlot& self, py::args) { self.abort(); });

  py::class_<PyReadSlot>(m, "ReadSlot", "A held read of a committed slot.")
      .def_property_readonly("data", &PyReadSlot::data)
      .def_property_readonly("index", &PyReadSlot::index)
      .def_property_readonly("sequence", &PyReadSlot::sequence)
      .def("verify", &PyReadSlot::verify)
      .def("still_held", &PyReadSlot::still_held)
      .def("release", &PyReadSlot::release)
      .def("__enter__", [](PyReadSlot& self) -> PyReadSlot& { return self; })
      .def("__exit__", [](PyReadSlot& self, py::args) { self.release(); });

  py::class_<block::Consumer>(m, "Consumer", "Reads slots of a DataBlock; heartbeats.")
      .def_static(
          "open",
          [](const std::string& name, double heartbeat_interval) {
            return block::Consumer::open(name, {.heartbeat_interval = to_ms(heartbeat_interval)});
          },
          py::arg("name"), py::arg("heartbeat_interval") = 1.0)
      .def_property_readonly("id", &block::Consumer::id)
      .def(
          "read_newest",
          [](block::Consumer& self, double timeout,
             uint64_t after_sequence) -> std::optional<PyReadSlot> {
            std::optional<block::ReadSlot> held;
            {
              py::gil_scoped_release unlocked;
              held = self.read_newest(to_ms(timeout), after_sequence);
            }
            if (!held) return std::nullopt;
            return PyReadSlot(std::move(*held));
          },
          py::arg("timeout") = 5.0, py::arg("after_sequence") = 0,
          "The newest committed slot with a sequence > after_sequence, or None on timeout.")
      .def(
          "read_slot",
          [](block::Consumer& self, uint32_t slot, double timeout) -> std::optional<PyReadSlot> {
            std::optional<block::ReadSlot> held;
            {
              py::gil_scoped_release unlocked;
              held = self.read_slot(slot, to_ms(timeout));
            }
            if (!held) return std::nullopt;
            return PyReadSlot(std::move(*held));
          },
          py::arg("slot"), py::arg("timeout") = 5.0)
      .def("heartbeat", &block::Consumer::heartbeat);
}

void define_recovery(py::module_& recovery) {
  recovery.doc() = "Diagnosis and recovery of DataBlocks (seed 003's pylabhub.recovery).";
  recovery.def(
      "diagnose",
      [](const std::string& name, std::optional<uint32_t> slot, double stuck_after) {
        auto seconds = std::chrono::seconds(static_cast<long long>(stuck_after));
        return to_python(block::diagnose(name, slot, seconds).to_json());
      },
      py::arg("name"), py::arg("slot") = py::none(), py::arg("stuck_after") = 60.0,
      "Per slot: state, write_lock {pid, alive, ...} or None, reader_count, writer_waiting, "
      "is_stuck and stuck_reason, age_seconds. Never changes the block.");
  recovery.def("is_process_alive", &block::is_process_alive, py::arg("pid"));
  recovery.def(
      "release_writer",
      [](const std::string& name, uint32_t slot) -> py::object {
        auto done = block::release_writer(name, slot);
        return done ? to_python(action_json(*done)) : py::none();
      },
      py::arg("name"), py::arg("slot"),
      "Frees a slot whose writer is dead; None when it was not write-locked. Raises "
      "LockRecoveryError (code 'lock_held') while the writer is alive.");
  recovery.def(
      "release_readers",
      [](const std::string& name, uint32_t slot, bool force) {
        auto result = block::release_readers(name, slot, force);
        nlohmann::json released = nlohmann::json::array(), kept = nlohmann::json::array();
        for (const auto& r : result.released) released.push_back(hold_json(r));
        for (const auto& r : result.kept) kept.push_back(hold_json(r));
        return to_python({{"released", released}, {"kept", kept}});
      },
      py::arg("name"), py::arg("slot"), py::arg("force") = false,
      "Frees dead consumers' read holds; with force also live ones. {'released', 'kept'}.");
  recovery.def(
      "cleanup_dead_consumers",
      [](const std::string& name) {
        auto result = block::cleanup_dead_consumers(name);
        nlohmann::json removed = nlohmann::json::array(), unresponsive = nlohmann::json::array();
        for (const auto& p : result.removed) removed.push_back(participant_json(p));
        for (const auto& p : result.unresponsive) unresponsive.push_back(participant_json(p));
        return to_python({{"removed", removed},
                          {"unresponsive", unresponsive},
                          {"active_consumer_count", result.active_consumer_count}});
      },
      py::arg("name"));
  recovery.def(
      "validate",
      [](const std::string& name, bool repair) {
        return to_python(block::validate(name, repair).to_json());
      },
      py::arg("name"), py::arg("repair") = false,
      "{'findings': [{where, problem, repairable, repaired, action}], 'unresolved': n}.");
  recovery.def(
      "recover_auto",
      [](const std::string& name, bool dry_run) {
        nlohmann::json actions = nlohmann::json::array();
        for (const auto& a : block::recover_auto(name, dry_run)) actions.push_back(action_json(a));
        return to_python(actions);
      },
      py::arg("name"), py::arg("dry_run") = false);
}

}  // namespace

PYBIND11_MODULE(warden, m) {
  m.doc() = "warden: keeps data pipelines safe from their own crashes (DataBlock and recovery).";
  register_errors(m);
  define_block(m);
  py::module_ recovery = m.def_submodule("recovery");
  define_recovery(recovery);
  // So that `import warden.recovery` works, not only `from warden import recovery`.
  py::module_::import("sys").attr("modules")["warden.recovery"] = recovery;
}
