#include <catch2/catch.hpp>
#include "onnx_builder.h"
