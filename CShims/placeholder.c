int lw_placeholder(void) { return 0; }
