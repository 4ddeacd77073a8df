"""The siamese model's code as MLflow logs it ("models from code"), so no pickle is stored.

`lib.core.registry.register` copies this file into every registered version; loading a version
runs that copy, which builds the wrapper from the installed `lib` (the threshold still comes
from the version's `model_config`). Only MLflow runs this file: it is named by
`lib.siamese.spec.SPEC`, never imported by trainflow's own code.
"""

from mlflow.models import set_model

from lib.siamese.serving import SiamesePyfunc

set_model(SiamesePyfunc())
