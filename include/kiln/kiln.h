// kiln public API: one include for everything.
#pragma once
#include "kiln/builder.h"
#include "kiln/calibrator.h"
#include "kiln/engine.h"
#include "kiln/network.h"
#include "kiln/plugin.h"
#include "kiln/status.h"
#include "kiln/types.h"
