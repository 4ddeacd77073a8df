"""The energy model's code as MLflow logs it ("models from code"), so no pickle is stored.

`lib.core.registry.register` copies this file into every registered version; loading a version
runs that copy, which builds the wrapper from the installed `lib`. Only MLflow runs this file:
it is named by `lib.energy.spec.SPEC`, never imported by trainflow's own code.
"""

from mlflow.models import set_model

from lib.energy.serving import EnergyPyfunc

set_model(EnergyPyfunc())
