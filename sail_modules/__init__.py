"""SAIBench's module library: SAIL problems, models, metrics, converters, software and hardware.

Load it into a notebook with ``%sail load sail_modules`` (or one file of it, such as
``%sail load sail_modules.ode``), or into a repository with
``Repository().load("sail_modules")``. Every file is a SAIL source: the repository parses
it, nothing here runs at import. Nothing downloads: data is generated, or ships inside a
package (scikit-learn's digits, scikit-image's sample images).

Files
-----
stacks
    Software (PyTorch, JAX, the SciPy stack with scikit-learn) and hardware (CPU, CUDA).
metrics
    Metrics shared by the case studies (accuracy, the paper's critical loss, wall time).
rankings
    Rankings: Pareto over wall time and accuracy or critical loss, fastest to a target accuracy.
digits
    Problems by cases: scikit-learn's digits, and the same digits read back from MNIST ``idx`` files;
    the paper's MLP, a CNN and scikit-learn classifiers.
burgers
    A PDE: 1-D viscous Burgers, a finite-difference solver at several grid sizes and a neural surrogate.
md
    A problem by setting: molecular dynamics with ASE as the golden software, and ML potentials.
segmentation
    Segmentation with pretraining and sample-efficiency stages (paper Fig. 8), and an Otsu baseline.
ode
    A problem class: ODE initial-value problems (Lotka–Volterra, Van der Pol, Robertson), SciPy's
    integrators at tolerance sweeps, and a neural surrogate.
hypothesis
    A hypothesis task: Lotka–Volterra's equations recovered from noisy trajectories by sparse regression.
"""
