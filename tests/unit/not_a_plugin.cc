// A shared library that is not a kiln plugin library (no kiln_register_plugins): the loader's
// error case in plugin_test.cc.
extern "C" int not_a_kiln_plugin() { return 7; }
