// libpq: every function warden calls, resolved on first use (include/warden/lazy_library.h)
// so that the executable does not load the library at start. Include this instead of the
// library's header. A function missing from this list links against the library directly, and
// the warden executable (which does not link it) fails to link: add its name here.
#pragma once

#include <libpq-fe.h>

#include "warden/lazy_library.h"

#define PQbackendPID(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQbackendPID)(__VA_ARGS__)
#define PQcancel(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQcancel)(__VA_ARGS__)
#define PQclear(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQclear)(__VA_ARGS__)
#define PQconnectdbParams(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQconnectdbParams)(__VA_ARGS__)
#define PQconsumeInput(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQconsumeInput)(__VA_ARGS__)
#define PQerrorMessage(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQerrorMessage)(__VA_ARGS__)
#define PQfinish(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQfinish)(__VA_ARGS__)
#define PQfmod(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQfmod)(__VA_ARGS__)
#define PQfname(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQfname)(__VA_ARGS__)
#define PQfreeCancel(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQfreeCancel)(__VA_ARGS__)
#define PQfreemem(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQfreemem)(__VA_ARGS__)
#define PQftype(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQftype)(__VA_ARGS__)
#define PQgetCancel(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQgetCancel)(__VA_ARGS__)
#define PQgetCopyData(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQgetCopyData)(__VA_ARGS__)
#define PQgetResult(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQgetResult)(__VA_ARGS__)
#define PQgetisnull(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQgetisnull)(__VA_ARGS__)
#define PQgetlength(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQgetlength)(__VA_ARGS__)
#define PQgetvalue(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQgetvalue)(__VA_ARGS__)
#define PQisBusy(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQisBusy)(__VA_ARGS__)
#define PQnfields(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQnfields)(__VA_ARGS__)
#define PQntuples(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQntuples)(__VA_ARGS__)
#define PQresStatus(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQresStatus)(__VA_ARGS__)
#define PQresultErrorField(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQresultErrorField)(__VA_ARGS__)
#define PQresultErrorMessage(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQresultErrorMessage)(__VA_ARGS__)
#define PQresultStatus(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQresultStatus)(__VA_ARGS__)
#define PQsendQuery(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQsendQuery)(__VA_ARGS__)
#define PQsendQueryParams(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQsendQueryParams)(__VA_ARGS__)
#define PQserverVersion(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQserverVersion)(__VA_ARGS__)
#define PQsocket(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQsocket)(__VA_ARGS__)
#define PQstatus(...) WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQstatus)(__VA_ARGS__)
#define PQtransactionStatus(...) \
  WARDEN_LAZY_FUNCTION(::warden::LazyLibrary::kLibpq, PQtransactionStatus)(__VA_ARGS__)
