namespace MoEMesh.Testing;

/// <summary>The repository these tests run from: the folder holding MoEMesh.sln above the test binaries.</summary>
public static class RepositoryRoot
{
    /// <summary>Its full path.</summary>
    /// <exception cref="InvalidOperationException">No MoEMesh.sln lies above the test binaries.</exception>
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(System.IO.Path.Combine(directory.FullName, "MoEMesh.sln"))) return directory.FullName;
        throw new InvalidOperationException($"No MoEMesh.sln above {AppContext.BaseDirectory}.");
    }
}
