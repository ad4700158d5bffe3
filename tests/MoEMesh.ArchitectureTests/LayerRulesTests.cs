using System.Reflection;
using System.Xml.Linq;

namespace MoEMesh.ArchitectureTests;

public class LayerRulesTests
{
    private static readonly string RepositoryRoot = MoEMesh.Testing.RepositoryRoot.Path;

    /// <summary>Every project under src/, by assembly name, with its csproj path.</summary>
    public static TheoryData<string> SourceProjects()
    {
        var data = new TheoryData<string>();
        foreach (var csproj in Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "src"), "*.csproj", SearchOption.AllDirectories).Order())
            data.Add(Path.GetFileNameWithoutExtension(csproj));
        return data;
    }

    [Theory]
    [MemberData(nameof(SourceProjects))]
    public void CompiledAssembly_ReferencesOnlyAllowedAssemblies(string assemblyName)
    {
        Assembly assembly;
        try
        {
            // The executable's assembly is named after its command (moemesh); the rules use the project name.
            assembly = Assembly.Load(CompiledName(assemblyName));
        }
        catch (FileNotFoundException)
        {
            throw new Xunit.Sdk.XunitException($"{assemblyName} is not referenced by MoEMesh.ArchitectureTests; add a ProjectReference so its references are checked.");
        }
        var references = assembly.GetReferencedAssemblies().Select(a => a.Name!);
        Assert.Empty(LayerRules.Violations(assemblyName, references));
    }

    [Theory]
    [MemberData(nameof(SourceProjects))]
    public void OnlyTheNode_TakesAspNet(string assemblyName)
    {
        var csproj = Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "src"), assemblyName + ".csproj", SearchOption.AllDirectories).Single();
        var frameworks = XDocument.Load(csproj).Descendants("FrameworkReference").Select(r => r.Attribute("Include")!.Value);
        var aspNet = Assembly.Load(CompiledName(assemblyName)).GetReferencedAssemblies().Select(a => a.Name!)
            .Where(n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
        if (assemblyName == "MoEMesh.Node") return;
        Assert.Empty(frameworks);
        Assert.Empty(aspNet);
    }

    private static string CompiledName(string project)
    {
        var csproj = Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "src"), project + ".csproj", SearchOption.AllDirectories).Single();
        return XDocument.Load(csproj).Descendants("AssemblyName").FirstOrDefault()?.Value ?? project;
    }

    [Theory]
    [MemberData(nameof(SourceProjects))]
    public void ProjectFile_ReferencesOnlyAllowedProjects(string assemblyName)
    {
        var csproj = Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "src"), assemblyName + ".csproj", SearchOption.AllDirectories).Single();
        var references = XDocument.Load(csproj).Descendants("ProjectReference")
            .Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value));
        Assert.Empty(LayerRules.Violations(assemblyName, references));
    }

    [Fact]
    public void Rules_ForbidWhatTheArchitectureForbids()
    {
        Assert.NotEmpty(LayerRules.Violations("MoEMesh.Tensors", ["MoEMesh.Experts"]));
        Assert.NotEmpty(LayerRules.Violations("MoEMesh.Experts", ["MoEMesh.Protocol"]));
        Assert.NotEmpty(LayerRules.Violations("MoEMesh.Dht", ["MoEMesh.Routing"]));
        Assert.NotEmpty(LayerRules.Violations("MoEMesh.Routing", ["MoEMesh.Experts"]));
        Assert.NotEmpty(LayerRules.Violations("MoEMesh.Protocol", ["MoEMesh.Dht"]));
        Assert.NotEmpty(LayerRules.Violations("MoEMesh.Settings", ["MoEMesh.Tensors"]));
    }

    [Fact]
    public void Rules_AllowWhatTheArchitectureAllows()
    {
        Assert.Empty(LayerRules.Violations("MoEMesh.Node", LayerRules.Arrows.Keys));
        Assert.Empty(LayerRules.Violations("MoEMesh.Routing", ["MoEMesh.Dht", "MoEMesh.Protocol", "MoEMesh.Tensors", "System.Runtime"]));
        Assert.Equal(["MoEMesh.Settings", "MoEMesh.Tensors"], LayerRules.Allowed("MoEMesh.Experts").Order());
    }

    [Fact]
    public void Rules_UnknownAssembly_IsAnError()
    {
        var e = Assert.Throws<ArgumentException>(() => LayerRules.Allowed("MoEMesh.Gateway"));
        Assert.Contains("allow-list", e.Message);
    }
}
