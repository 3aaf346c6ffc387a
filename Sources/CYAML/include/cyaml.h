#ifndef IOTKUBE_CYAML_H
#define IOTKUBE_CYAML_H
#include <yaml.h>

/// Heap-allocates a libyaml parser reading from `input` (not copied: it must outlive the parser).
/// Returns NULL when out of memory.
yaml_parser_t *iotkube_yaml_parser_new(const unsigned char *input, size_t length);

/// Frees a parser made by iotkube_yaml_parser_new.
void iotkube_yaml_parser_free(yaml_parser_t *parser);

/// Heap-allocates an empty event for iotkube_yaml_parser_parse.
yaml_event_t *iotkube_yaml_event_new(void);

/// Frees an event made by iotkube_yaml_event_new (and what it holds).
void iotkube_yaml_event_free(yaml_event_t *event);

#endif
