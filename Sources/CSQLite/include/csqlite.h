#ifndef IOTKUBE_CSQLITE_H
#define IOTKUBE_CSQLITE_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT as a function: the macro is a cast Swift cannot import.
void iotkube_sqlite_bind_text_copy(sqlite3_stmt *statement, int index, const char *text, int length);
void iotkube_sqlite_bind_blob_copy(sqlite3_stmt *statement, int index, const void *bytes, int length);

#endif
