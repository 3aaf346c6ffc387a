#include "cyaml.h"
#include <stdlib.h>
#include <string.h>

yaml_parser_t *iotkube_yaml_parser_new(const unsigned char *input, size_t length) {
    yaml_parser_t *parser = calloc(1, sizeof(yaml_parser_t));
    if (parser == NULL) return NULL;
    if (!yaml_parser_initialize(parser)) {
        free(parser);
        return NULL;
    }
    yaml_parser_set_input_string(parser, input, length);
    return parser;
}

void iotkube_yaml_parser_free(yaml_parser_t *parser) {
    if (parser == NULL) return;
    yaml_parser_delete(parser);
    free(parser);
}

yaml_event_t *iotkube_yaml_event_new(void) {
    return calloc(1, sizeof(yaml_event_t));
}

void iotkube_yaml_event_free(yaml_event_t *event) {
    if (event == NULL) return;
    yaml_event_delete(event);
    free(event);
}
