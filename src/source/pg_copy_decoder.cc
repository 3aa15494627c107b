#include "pg_copy_decoder.h"

#include <cstring>
#include <limits>

#include "lazy_duckdb.h"
#include "warden/error.h"

namespace warden::pg_internal {

namespace {

// PostgreSQL type oids (pg_type.dat); stable across versions.
constexpr uint32_t kBoolOid = 16, kByteaOid = 17, kNameOid = 19, kInt8Oid = 20, kInt2Oid = 21,
                   kInt4Oid = 23, kTextOid = 25, kFloat4Oid = 700, kFloat8Oid = 701,
                   kBpcharOid = 1042, kVarcharOid = 1043, kDateOid = 1082, kTimestampOid = 1114,
                   kTimestampTzOid = 1184, kNumericOid = 1700;

// PostgreSQL counts dates from 2000-01-01, DuckDB from 1970-01-01.
constexpr int32_t kPgEpochDays = 10957;
constexpr int64_t kPgEpochMicros = 946684800000000LL;

constexpr char kSignature[] = "PGCOPY\n\377\r\n";  // + the terminating NUL: 11 bytes

uint16_t read_u16(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((b[0] << 8) | b[1]);
}
uint32_t read_u32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}
uint64_t read_u64(const char* p) { return (uint64_t{read_u32(p)} << 32) | read_u32(p + 4); }

[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorCode::kMalformed, "decode COPY BINARY from PostgreSQL: " + what);
}

// Numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits.
struct Numeric {
  int ndigits = 0;
  int weight = 0;
  uint16_t sign = 0;
  int dscale = 0;
  const char* digits = nullptr;
  int digit(int i) const {
    return i >= 0 && i < ndigits ? static_cast<int16_t>(read_u16(digits + 2 * i)) : 0;
  }
};
constexpr uint16_t kNumericNegative = 0x4000, kNumericNaN = 0xC000, kNumericPinf = 0xD000,
                   kNumericNinf = 0xF000;

Numeric parse_numeric(std::string_view field) {
  if (field.size() < 8) malformed("numeric field of " + std::to_string(field.size()) + " bytes");
  Numeric n;
  n.ndigits = static_cast<int16_t>(read_u16(field.data()));
  n.weight = static_cast<int16_t>(read_u16(field.data() + 2));
  n.sign = read_u16(field.data() + 4);
  n.dscale = static_cast<int16_t>(read_u16(field.data() + 6));
  if (n.ndigits < 0 || field.size() != 8 + 2 * static_cast<size_t>(n.ndigits)) {
    malformed("numeric field length does not match its digit count");
  }
  n.digits = field.data() + 8;
  return n;
}

// 10^0 .. 10^38, the range of DuckDB's DECIMAL.
struct Pow10Table {
  __int128 values[39];
  constexpr Pow10Table() : values() {
    values[0] = 1;
    for (int i = 1; i < 39; ++i) values[i] = values[i - 1] * 10;
  }
};
constexpr Pow10Table kPow10;

std::string four_digits(int d) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%04d", d);
  return buffer;
}

}  // namespace

std::string numeric_to_text(std::string_view field) {
  Numeric n = parse_numeric(field);
  if (n.sign == kNumericNaN) return "NaN";
  if (n.sign == kNumericPinf) return "Infinity";
  if (n.sign == kNumericNinf) return "-Infinity";
  std::string out;
  if (n.sign == kNumericNegative) out += '-';
  if (n.weight < 0) {
    out += '0';
  } else {
    for (int i = 0; i <= n.weight; ++i) {
      out += i == 0 ? std::to_string(n.digit(i)) : four_digits(n.digit(i));
    }
  }
  if (n.dscale > 0) {
    std::string fraction;
    for (int i = n.weight + 1; static_cast<int>(fraction.size()) < n.dscale; ++i) {
      fraction += four_digits(n.digit(i));
    }
    fraction.resize(static_cast<size_t>(n.dscale));
    out += '.' + fraction;
  }
  return out;
}

std::vector<PlannedColumn> plan_columns(const std::vector<pg::ColumnInfo>& columns) {
  std::vector<PlannedColumn> plan;
  for (const auto& column : columns) {
    PlannedColumn p;
    p.name = column.name;
    switch (column.type_oid) {
      case kBoolOid:
        p.kind = Kind::kBool;
        p.duckdb_type = "BOOLEAN";
        break;
      case kInt2Oid:
        p.kind = Kind::kInt16;
        p.duckdb_type = "SMALLINT";
        break;
      case kInt4Oid:
        p.kind = Kind::kInt32;
        p.duckdb_type = "INTEGER";
        break;
      case kInt8Oid:
        p.kind = Kind::kInt64;
        p.duckdb_type = "BIGINT";
        break;
      case kFloat4Oid:
        p.kind = Kind::kFloat;
        p.duckdb_type = "FLOAT";
        break;
      case kFloat8Oid:
        p.kind = Kind::kDouble;
        p.duckdb_type = "DOUBLE";
        break;
      case kByteaOid:
        p.kind = Kind::kBlob;
        p.duckdb_type = "BLOB";
        break;
      case kDateOid:
        p.kind = Kind::kDate;
        p.duckdb_type = "DATE";
        break;
      case kTimestampOid:
        p.kind = Kind::kTimestamp;
        p.duckdb_type = "TIMESTAMP";
        break;
      case kTimestampTzOid:
        p.kind = Kind::kTimestampTz;
        p.duckdb_type = "TIMESTAMP WITH TIME ZONE";
        break;
      case kTextOid:
      case kVarcharOid:
      case kBpcharOid:
      case kNameOid:
        p.kind = Kind::kText;
        p.duckdb_type = "VARCHAR";
        break;
      case kNumericOid: {
        // typmod = ((precision << 16) | scale) + 4; -1 for an unconstrained numeric.
        int modifier = column.type_modifier;
        int precision = modifier >= 4 ? ((modifier - 4) >> 16) & 0xffff : 0;
        int scale = modifier >= 4 ? (modifier - 4) & 0x7ff : 0;
        if (precision >= 1 && precision <= 38 && scale <= precision &&
            ((modifier - 4) & 0x400) == 0) {
          p.kind = Kind::kDecimal;
          p.precision = precision;
          p.scale = scale;
          p.duckdb_type =
              "DECIMAL(" + std::to_string(precision) + "," + std::to_string(scale) + ")";
        } else {
          // No declared precision (WRDS's usual NUMERIC) or wider than DuckDB's 38 digits:
          // keep every digit as text rather than round through a double.
          p.kind = Kind::kNumericText;
          p.duckdb_type = "VARCHAR";
        }
        break;
      }
      default:
        p.kind = Kind::kText;
        p.duckdb_type = "VARCHAR";
        p.cast_to_text = true;
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

std::string copy_query_with_row_hash(const std::string& query,
                                     const std::vector<PlannedColumn>& columns,
                                     const std::string& row_hash) {
  std::string select;
  for (const auto& c : columns) {
    std::string quoted = "\"";
    for (char ch : c.name) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    quoted += "\"";
    select += "warden_row." + quoted + (c.cast_to_text ? "::text AS " + quoted : "") + ", ";
  }
  return "SELECT " + select + row_hash + " FROM (" + query + ") AS warden_row";
}

std::string copy_query(const std::string& query, const std::vector<PlannedColumn>& columns) {
  bool any_cast = false;
  for (const auto& c : columns) any_cast = any_cast || c.cast_to_text;
  if (!any_cast) return query;
  std::string select;
  for (const auto& c : columns) {
    std::string quoted = "\"";
    for (char ch : c.name) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    quoted += "\"";
    select += (select.empty() ? "" : ", ") + quoted + (c.cast_to_text ? "::text AS " + quoted : "");
  }
  return "SELECT " + select + " FROM (" + query + ") AS warden_copy";
}

CopyDecoder::CopyDecoder(std::vector<PlannedColumn> columns, bool row_hash)
    : columns_(std::move(columns)), row_hash_(row_hash) {
  for (const auto& c : columns_) {
    duckdb_logical_type type = nullptr;
    switch (c.kind) {
      case Kind::kBool:
        type = duckdb_create_logical_type(DUCKDB_TYPE_BOOLEAN);
        break;
      case Kind::kInt16:
        type = duckdb_create_logical_type(DUCKDB_TYPE_SMALLINT);
        break;
      case Kind::kInt32:
        type = duckdb_create_logical_type(DUCKDB_TYPE_INTEGER);
        break;
      case Kind::kInt64:
        type = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
        break;
      case Kind::kFloat:
        type = duckdb_create_logical_type(DUCKDB_TYPE_FLOAT);
        break;
      case Kind::kDouble:
        type = duckdb_create_logical_type(DUCKDB_TYPE_DOUBLE);
        break;
      case Kind::kDecimal:
        type = duckdb_create_decimal_type(static_cast<uint8_t>(c.precision),
                                          static_cast<uint8_t>(c.scale));
        break;
      case Kind::kBlob:
        type = duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
        break;
      case Kind::kDate:
        type = duckdb_create_logical_type(DUCKDB_TYPE_DATE);
        break;
      case Kind::kTimestamp:
        type = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP);
        break;
      case Kind::kTimestampTz:
        type = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP_TZ);
        break;
      case Kind::kNumericText:
      case Kind::kText:
        type = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
        break;
    }
    types_.push_back(type);
  }
  capacity_ = duckdb_vector_size();
}

CopyDecoder::~CopyDecoder() {
  if (chunk_) duckdb_destroy_data_chunk(&chunk_);
  for (auto& type : types_) duckdb_destroy_logical_type(&type);
}

void CopyDecoder::start_chunk() {
  chunk_ = duckdb_create_data_chunk(types_.data(), types_.size());
  chunk_size_ = 0;
  // Each column's vector, data and validity looked up once per chunk, not once per value.
  vectors_.resize(columns_.size());
  data_.resize(columns_.size());
  validity_.resize(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    vectors_[c] = duckdb_data_chunk_get_vector(chunk_, c);
    duckdb_vector_ensure_validity_writable(vectors_[c]);
    data_[c] = duckdb_vector_get_data(vectors_[c]);
    validity_[c] = duckdb_vector_get_validity(vectors_[c]);
  }
}

void CopyDecoder::seal_chunk() {
  duckdb_data_chunk_set_size(chunk_, chunk_size_);
  ready_.emplace_back(chunk_);
  chunk_ = nullptr;
  chunk_size_ = 0;
}

void CopyDecoder::feed(std::string_view data) {
  std::string_view input = data;
  if (!pending_.empty()) {
    pending_.append(data);
    input = pending_;
  }
  size_t pos = 0;
  if (!header_seen_) {
    if (input.size() < 19) {
      if (pending_.empty()) pending_.assign(data);
      return;
    }
    if (std::memcmp(input.data(), kSignature, 11) != 0) malformed("missing PGCOPY signature");
    uint32_t extension = read_u32(input.data() + 15);
    if (input.size() < 19 + extension) {
      if (pending_.empty()) pending_.assign(data);
      return;
    }
    pos = 19 + extension;
    header_seen_ = true;
  }
  while (!trailer_seen_ && decode_tuple(input, pos)) {
  }
  std::string rest(input.substr(pos));
  pending_ = std::move(rest);
}

bool CopyDecoder::decode_tuple(std::string_view data, size_t& pos) {
  if (data.size() - pos < 2) return false;
  int16_t fields = static_cast<int16_t>(read_u16(data.data() + pos));
  if (fields == -1) {
    trailer_seen_ = true;
    pos += 2;
    return false;
  }
  const size_t expected = columns_.size() + (row_hash_ ? 1 : 0);
  if (fields != static_cast<int16_t>(expected)) {
    malformed("a tuple has " + std::to_string(fields) + " fields, expected " +
              std::to_string(expected));
  }
  // Check the whole tuple is here before writing any of it into the chunk.
  size_t scan = pos + 2;
  for (int16_t f = 0; f < fields; ++f) {
    if (data.size() - scan < 4) return false;
    int32_t length = static_cast<int32_t>(read_u32(data.data() + scan));
    scan += 4;
    if (length > 0) {
      if (data.size() - scan < static_cast<size_t>(length)) return false;
      scan += static_cast<size_t>(length);
    }
  }
  if (!chunk_) start_chunk();
  size_t cursor = pos + 2;
  for (size_t c = 0; c < columns_.size(); ++c) {
    int32_t length = static_cast<int32_t>(read_u32(data.data() + cursor));
    cursor += 4;
    if (length < 0) {
      duckdb_validity_set_row_invalid(validity_[c], chunk_size_);
      continue;
    }
    write_field(c, data.substr(cursor, static_cast<size_t>(length)));
    cursor += static_cast<size_t>(length);
  }
  if (row_hash_) {  // the server's hash of the row: summed, never stored
    int32_t length = static_cast<int32_t>(read_u32(data.data() + cursor));
    cursor += 4;
    if (length == 8) {
      row_hash_sum_ += static_cast<int64_t>(read_u64(data.data() + cursor));
    } else if (length == 4) {
      row_hash_sum_ += static_cast<int32_t>(read_u32(data.data() + cursor));
    } else if (length >= 0) {
      malformed("the row hash is a " + std::to_string(length) + "-byte value");
    }
    if (length > 0) cursor += static_cast<size_t>(length);
  }
  pos = cursor;
  ++chunk_size_;
  ++rows_;
  if (chunk_size_ == capacity_) seal_chunk();
  return true;
}

void CopyDecoder::write_field(size_t column, std::string_view field) {
  const PlannedColumn& plan = columns_[column];
  duckdb_vector vector = vectors_[column];
  void* data = data_[column];
  const size_t row = chunk_size_;
  auto expect_size = [&](size_t size) {
    if (field.size() != size) {
      malformed("column " + plan.name + ": " + std::to_string(field.size()) + "-byte value where " +
                std::to_string(size) + " bytes were expected");
    }
  };
  switch (plan.kind) {
    case Kind::kBool:
      expect_size(1);
      static_cast<bool*>(data)[row] = field[0] != 0;
      break;
    case Kind::kInt16:
      expect_size(2);
      static_cast<int16_t*>(data)[row] = static_cast<int16_t>(read_u16(field.data()));
      break;
    case Kind::kInt32:
      expect_size(4);
      static_cast<int32_t*>(data)[row] = static_cast<int32_t>(read_u32(field.data()));
      break;
    case Kind::kInt64:
      expect_size(8);
      static_cast<int64_t*>(data)[row] = static_cast<int64_t>(read_u64(field.data()));
      break;
    case Kind::kFloat: {
      expect_size(4);
      uint32_t bits = read_u32(field.data());
      std::memcpy(&static_cast<float*>(data)[row], &bits, 4);
      break;
    }
    case Kind::kDouble: {
      expect_size(8);
      uint64_t bits = read_u64(field.data());
      std::memcpy(&static_cast<double*>(data)[row], &bits, 8);
      break;
    }
    case Kind::kDate: {
      expect_size(4);
      int32_t days = static_cast<int32_t>(read_u32(field.data()));
      int32_t out;
      if (days == std::numeric_limits<int32_t>::max())
        out = days;  // 'infinity'
      else if (days == std::numeric_limits<int32_t>::min())
        out = -std::numeric_limits<int32_t>::max();
      else
        out = days + kPgEpochDays;
      static_cast<int32_t*>(data)[row] = out;
      break;
    }
    case Kind::kTimestamp:
    case Kind::kTimestampTz: {
      expect_size(8);
      int64_t micros = static_cast<int64_t>(read_u64(field.data()));
      int64_t out;
      if (micros == std::numeric_limits<int64_t>::max())
        out = micros;
      else if (micros == std::numeric_limits<int64_t>::min())
        out = -std::numeric_limits<int64_t>::max();
      else
        out = micros + kPgEpochMicros;
      static_cast<int64_t*>(data)[row] = out;
      break;
    }
    case Kind::kText:
    case Kind::kBlob:
      duckdb_vector_assign_string_element_len(vector, row, field.data(), field.size());
      break;
    case Kind::kNumericText: {
      std::string text = numeric_to_text(field);
      duckdb_vector_assign_string_element_len(vector, row, text.data(), text.size());
      break;
    }
    case Kind::kDecimal: {
      Numeric n = parse_numeric(field);
      if (n.sign == kNumericNaN || n.sign == kNumericPinf || n.sign == kNumericNinf) {
        // DECIMAL has no NaN or infinity; NULL is the only faithful "no number" here.
        duckdb_validity_set_row_invalid(validity_[column], row);
        break;
      }
      // Each base-10000 digit times the power of ten it stands for (a table, not a loop).
      __int128 value = 0;
      for (int i = 0; i < n.ndigits; ++i) {
        const int exponent = 4 * (n.weight - i) + plan.scale;
        const int digit = n.digit(i);
        if (exponent >= 0) {
          if (exponent > 38) malformed("column " + plan.name + ": value exceeds its precision");
          value += static_cast<__int128>(digit) * kPow10.values[exponent];
        } else {
          const int divisor = exponent >= -3 ? static_cast<int>(kPow10.values[-exponent]) : 10000;
          if (digit % divisor != 0) {
            malformed("column " + plan.name + ": more fractional digits than its scale");
          }
          value += digit / divisor;
        }
      }
      if (n.sign == kNumericNegative) value = -value;
      if (plan.precision <= 4)
        static_cast<int16_t*>(data)[row] = static_cast<int16_t>(value);
      else if (plan.precision <= 9)
        static_cast<int32_t*>(data)[row] = static_cast<int32_t>(value);
      else if (plan.precision <= 18)
        static_cast<int64_t*>(data)[row] = static_cast<int64_t>(value);
      else {
        duckdb_hugeint huge;
        huge.lower = static_cast<uint64_t>(value);
        huge.upper = static_cast<int64_t>(value >> 64);
        static_cast<duckdb_hugeint*>(data)[row] = huge;
      }
      break;
    }
  }
}

std::optional<duckdb::DataChunk> CopyDecoder::take() {
  if (ready_.empty()) return std::nullopt;
  duckdb::DataChunk chunk = std::move(ready_.front());
  ready_.erase(ready_.begin());
  return chunk;
}

std::optional<duckdb::DataChunk> CopyDecoder::finish() {
  if (!trailer_seen_) {
    malformed("the stream ended before its end-of-data marker (" + std::to_string(rows_) +
              " rows read): the connection was cut");
  }
  if (chunk_ && chunk_size_ > 0) seal_chunk();
  return take();
}

}  // namespace warden::pg_internal
