namespace MoEMesh.Node.Tests;

/// <summary>
/// Test classes that start many nodes each (several swarms of four or five, trained and reconciled) run one at a
/// time, after the other classes, rather than beside them: on a machine of two cores they would otherwise load it
/// enough to push other classes' lookups past their timeouts.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SwarmsOfTheirOwn
{
    public const string Name = "swarms of their own";
}
