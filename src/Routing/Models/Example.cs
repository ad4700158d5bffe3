namespace MoEMesh.Routing.Models;

/// <summary>One labelled text, with the domain it comes from when the data names one.</summary>
/// <param name="Text">The text.</param>
/// <param name="Label">Its class.</param>
/// <param name="Domain">Its domain ("wordnet", "brown"), or null.</param>
public sealed record Example(string Text, string Label, string? Domain = null);
