# Build tools for the native parts (llama.cpp through llama-cpp-sys-2, SQLite).
apt_need build-essential cmake clang libclang-dev pkg-config
