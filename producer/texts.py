"""French support texts, per ticket type, assembled from templates and vocabulary.

Combining a few dozen templates with the slot values below gives tens of thousands
of distinct, plausible requests without any data set or network access.
"""

from __future__ import annotations

from core.contract import TicketType

__all__ = ["SLOTS", "TEMPLATES"]

SLOTS: dict[str, tuple[str, ...]] = {
    "produit": (
        "l'application mobile",
        "l'espace client",
        "le site web",
        "la box internet",
        "le module de paiement",
        "l'application de bureau",
        "le portail fournisseur",
        "la messagerie",
        "le tableau de bord",
        "l'API de facturation",
    ),
    "erreur": (
        "une erreur 500",
        "un écran blanc",
        "le message « session expirée »",
        "une erreur de connexion",
        "un délai d'attente dépassé",
        "le code d'erreur E-104",
        "un plantage au démarrage",
        "une page qui ne se charge plus",
    ),
    "moment": (
        "depuis ce matin",
        "depuis hier soir",
        "depuis la dernière mise à jour",
        "depuis lundi",
        "à chaque connexion",
        "de façon intermittente",
        "depuis une heure",
    ),
    "action": (
        "valider ma commande",
        "me connecter",
        "télécharger ma facture",
        "modifier mon mot de passe",
        "exporter mes données",
        "ajouter un utilisateur",
        "payer par carte",
        "consulter mon historique",
    ),
    "objet": (
        "ma facture de mars",
        "mon abonnement",
        "mon adresse de livraison",
        "le contrat de maintenance",
        "mes coordonnées bancaires",
        "ma commande n°{numero}",
        "le devis envoyé la semaine dernière",
        "mon compte professionnel",
    ),
    "souhait": (
        "un remboursement",
        "un changement d'offre",
        "la résiliation de mon abonnement",
        "un duplicata de facture",
        "un geste commercial",
        "l'ajout d'une licence",
        "un rendez-vous avec un conseiller",
        "la suppression de mes données personnelles",
    ),
    "sujet": (
        "les délais de livraison",
        "la compatibilité avec macOS",
        "les conditions de garantie",
        "la portabilité de mon numéro",
        "les moyens de paiement acceptés",
        "l'export au format CSV",
        "la double authentification",
        "les horaires du support",
    ),
    "politesse": (
        "Merci d'avance.",
        "Cordialement.",
        "Merci pour votre aide.",
        "Bonne journée.",
        "Merci de me recontacter rapidement.",
        "",
    ),
}

TEMPLATES: dict[TicketType, tuple[str, ...]] = {
    TicketType.INCIDENT: (
        "Bonjour, {produit} affiche {erreur} {moment}. Impossible de {action}. {politesse}",
        "{produit} ne fonctionne plus {moment} : j'obtiens {erreur} quand j'essaie de {action}. {politesse}",
        "Bonjour, je n'arrive plus à {action} {moment}, {produit} renvoie {erreur}. {politesse}",
        "Incident bloquant : {erreur} sur {produit} {moment}, toute l'équipe est impactée. {politesse}",
        "Depuis la mise à jour, {produit} plante dès que je veux {action}. {politesse}",
    ),
    TicketType.DEMANDE: (
        "Bonjour, je souhaiterais {souhait} concernant {objet}. {politesse}",
        "Pourriez-vous procéder à {souhait} pour {objet} ? {politesse}",
        "Bonjour, merci de mettre à jour {objet} et de m'accorder {souhait}. {politesse}",
        "Je vous contacte pour demander {souhait} suite au problème sur {objet}. {politesse}",
        "Bonjour, est-il possible d'obtenir {souhait} ? Cela concerne {objet}. {politesse}",
    ),
    TicketType.QUESTION: (
        "Bonjour, pouvez-vous m'indiquer {sujet} ? {politesse}",
        "J'aurais une question sur {sujet} : comment {action} depuis {produit} ? {politesse}",
        "Bonjour, où puis-je trouver des informations sur {sujet} ? {politesse}",
        "Est-ce que {produit} permet de {action} ? Je m'interroge aussi sur {sujet}. {politesse}",
        "Petite question au sujet de {objet} : pouvez-vous me préciser {sujet} ? {politesse}",
    ),
}
